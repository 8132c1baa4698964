# Kconfig at configure time through kconfiglib (Debian: python3-kconfiglib).
# build/.config is made from HEARTH_DEFCONFIG the first time, then kept (so
# menuconfig edits survive); build/include/hearth_config.h is regenerated from it.
if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
	# The python3 on PATH may be a private build that cannot see Debian's kconfiglib.
	set(Python3_EXECUTABLE /usr/bin/python3)
endif()
find_package(Python3 REQUIRED COMPONENTS Interpreter)
execute_process(COMMAND ${Python3_EXECUTABLE} -c "import kconfiglib"
	RESULT_VARIABLE _kc_rc OUTPUT_QUIET ERROR_QUIET)
if(NOT _kc_rc EQUAL 0)
	message(FATAL_ERROR "kconfiglib is missing for ${Python3_EXECUTABLE}: "
		"apt-get install python3-kconfiglib, or pass -DPython3_EXECUTABLE=/usr/bin/python3")
endif()

set(HEARTH_KCONFIG_CONFIG "${CMAKE_BINARY_DIR}/.config")
set(HEARTH_CONFIG_HEADER "${CMAKE_BINARY_DIR}/include/hearth_config.h")
file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/include")
set(_kenv ${CMAKE_COMMAND} -E env srctree=${CMAKE_SOURCE_DIR}
	KCONFIG_CONFIG=${HEARTH_KCONFIG_CONFIG})

if(NOT EXISTS "${HEARTH_KCONFIG_CONFIG}")
	execute_process(COMMAND ${_kenv} ${Python3_EXECUTABLE} -m defconfig
		--kconfig Kconfig "${HEARTH_DEFCONFIG}"
		WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}" RESULT_VARIABLE _rc)
	if(NOT _rc EQUAL 0)
		message(FATAL_ERROR "Kconfig: could not apply ${HEARTH_DEFCONFIG}")
	endif()
endif()
execute_process(COMMAND ${_kenv} ${Python3_EXECUTABLE} -m genconfig
	--header-path "${HEARTH_CONFIG_HEADER}"
	--file-list "${CMAKE_BINARY_DIR}/kconfig-files.txt" Kconfig
	WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
	message(FATAL_ERROR "Kconfig: genconfig failed for ${HEARTH_KCONFIG_CONFIG}")
endif()
file(STRINGS "${CMAKE_BINARY_DIR}/kconfig-files.txt" _kfiles)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
	"${HEARTH_KCONFIG_CONFIG}" "${HEARTH_DEFCONFIG}" ${_kfiles})

add_custom_target(menuconfig
	COMMAND ${_kenv} ${Python3_EXECUTABLE} -m menuconfig Kconfig
	COMMAND ${CMAKE_COMMAND} "${CMAKE_BINARY_DIR}"
	WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}" USES_TERMINAL
	COMMENT "Edit build/.config, then regenerate hearth_config.h")
add_custom_target(defconfig
	COMMAND ${_kenv} ${Python3_EXECUTABLE} -m defconfig --kconfig Kconfig "${HEARTH_DEFCONFIG}"
	COMMAND ${CMAKE_COMMAND} "${CMAKE_BINARY_DIR}"
	WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
	COMMENT "Reset build/.config to ${HEARTH_DEFCONFIG}")
